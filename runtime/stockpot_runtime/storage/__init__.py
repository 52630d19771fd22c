"""Storage for the runtime: where models and data come from and where artifacts go.

- ``uri``: parse ``s3://``, ``hf://``, ``pvc://``, ``file://`` and paths into typed locations.
- ``store``: one interface (``Store``, ``open_store``) over S3 prefixes (``s3``) and directories (``local``).
- ``hub``: download ``hf://`` repositories; ``sources``: ``materialize`` any source, ``check_model_dir``.
- ``manifest``: commit artifacts (files first, ``manifest.json`` last), read and verify them.
- ``checkpoints``: ``CheckpointStore`` with completion markers, resume lookup and pruning.
- ``progress``: ``progress.json``, ``metrics.jsonl`` and the termination message.
- ``errors``: ``StorageError`` and its subclasses, each naming the location and the fix.

No module here imports torch: the trainer hands this package directories.
"""
