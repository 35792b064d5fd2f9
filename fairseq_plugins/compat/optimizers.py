"""Optimizers: per-parameter settings, and precision flags on hardware that lacks them."""

import torch

def per_parameter_optimizer_settings():
    """Every optimizer honours the per-parameter ``optim_overrides`` that fairseq's ``composite``
    optimizer alone reads (``optimizer_groups.py``), so a model can keep parameters out of weight decay."""
    from fairseq import optim
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    from fairseq_plugins.errors import ConfigError
    from fairseq_plugins.optimizer_groups import optimizer_overrides, param_groups

    if getattr(optim.build_optimizer, "builds_param_groups", False):
        return
    build_optimizer = optim.build_optimizer
    build_fp16_optimizer = FP16Optimizer.build_optimizer.__func__

    def build_optimizer_with_groups(cfg, params, *args, **kwargs):
        params = list(params)
        if params and not isinstance(params[0], dict):
            groups = param_groups(p for p in params if p.requires_grad)
            if groups is not None:
                return optim._build_optimizer(cfg, groups, *args, **kwargs)
        return build_optimizer(cfg, params, *args, **kwargs)

    def build_fp16_optimizer_checked(cls, cfg, params, **kwargs):
        params = list(params)
        flatten = not getattr(cfg.common, "fp16_no_flatten_grads", False) and not getattr(cfg.common, "bf16", False)
        if flatten and any(optimizer_overrides(p) for p in params):
            raise ConfigError("--no-weight-decay-embeddings with --fp16 needs --fp16-no-flatten-grads "
                              "(flat fp32 gradients are one parameter group)")
        return build_fp16_optimizer(cls, cfg, params, **kwargs)

    build_optimizer_with_groups.__wrapped__ = build_optimizer
    build_optimizer_with_groups.builds_param_groups = True
    optim.build_optimizer = build_optimizer_with_groups
    FP16Optimizer.build_optimizer = classmethod(build_fp16_optimizer_checked)


def precision_flags_without_their_hardware_are_one_line():
    """``--fp16`` without a GPU (fairseq's flat fp32 copy asks CUDA for its device: "Torch not compiled
    with CUDA enabled") and ``--bf16``/``--memory-efficient-bf16``/``--tpu`` without torch_xla (fairseq
    trains bf16 on TPUs only: "'NoneType' object has no attribute 'xla_device'") stop with one line
    naming what works."""
    from fairseq import utils as fairseq_utils
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    from fairseq_plugins.errors import ConfigError

    if getattr(fairseq_utils.get_tpu_device, "is_one_line_without_xla", False):
        return
    build_fp32_params = FP16Optimizer.build_fp32_params.__func__
    get_tpu_device = fairseq_utils.get_tpu_device

    def build_fp32_params_checked(cls, args, params, flatten=True):
        if flatten and not torch.cuda.is_available():
            raise ConfigError("--fp16 without a GPU: fairseq's flat fp32 copy of the parameters asks CUDA for its device; add "
                              "--fp16-no-flatten-grads, use --memory-efficient-fp16, or train in fp32 on CPUs")
        return build_fp32_params(cls, args, params, flatten=flatten)

    def tpu_device_checked():
        if fairseq_utils.xm is None:
            raise ConfigError("--bf16 (like --memory-efficient-bf16 and --tpu) trains on TPUs in fairseq, through "
                              "torch_xla (not installed): on GPUs use --fp16 or --amp, on CPUs train in fp32")
        return get_tpu_device()

    tpu_device_checked.is_one_line_without_xla = True
    FP16Optimizer.build_fp32_params = classmethod(build_fp32_params_checked)
    fairseq_utils.get_tpu_device = tpu_device_checked
