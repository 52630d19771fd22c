"""One module per method family; ``build_objective`` picks the family for ``method.task``.

- ``causal_lm``: sft, pretrain
- ``preference``: dpo, ipo, simpo, orpo, bco (paired chosen/rejected)
- ``kto``: kto (unpaired desirable/undesirable)
- ``reward_model``: reward_model (Bradley–Terry on pairs, one-logit head)
- ``grpo``: grpo (sampled groups scored by verifiable rewards)
- ``distill``: distill (KL to a frozen teacher's softened distribution)
"""
