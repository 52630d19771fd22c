"""Training: ``stockpot-runtime train`` — load, adapt, optimise, checkpoint, publish.

- ``run.train(run)``: the whole command for one ``TrainRun`` (sources → model → objective → loop → artifact).
- ``loading``: device, precision and the base model/tokenizer; clear errors for GPU-only settings on CPU.
- ``adapters``: LoRA (DoRA, rsLoRA, LoRA+, PiSSA/OLoRA init), VeRA, full fine-tuning with frozen layers.
- ``optimization``: optimizer, parameter groups and the learning-rate schedule.
- ``loop``: the optimisation loop (gradient accumulation, clipping, evaluation, SIGTERM, progress).
- ``checkpointing``: the resumable state (trainable weights, optimizer, scheduler, RNG, data position).
- ``objectives``: one module per method family (causal_lm, preference, kto, reward_model, grpo, distill).
- ``rewards`` / ``sandbox``: GRPO's verifiable rewards and the subprocess sandbox for user reward code.
- ``distributed``: torchrun self-launch and the DDP / FSDP2 / DeepSpeed presets.
- ``metrics``: the Prometheus endpoint of a training pod.
"""
