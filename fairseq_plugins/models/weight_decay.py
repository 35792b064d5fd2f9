"""Parameters kept out of weight decay, with any fairseq optimizer.

fairseq builds its optimizer from one flat list of parameters, so ``--weight-decay``
applies to all of them. Its own convention for per-parameter settings is an
``optim_overrides`` attribute on a parameter (``{"optimizer": {"weight_decay": 0.0}}``),
read only by its ``composite`` optimizer. ``install()`` makes every optimizer honour
the ``optimizer`` part of it: parameters with the same overrides become one param
group of the underlying torch optimizer with those values, the others the default
group. Nothing changes for a model whose parameters carry no overrides.

Spike No More keeps the embeddings (std ~1 with ``--embed-init-std 1``) out of weight
decay, which would otherwise pull the shortcut back towards zero.
"""

from fairseq import optim
from fairseq.optim.fp16_optimizer import FP16Optimizer

from fairseq_plugins.errors import ConfigError

NO_WEIGHT_DECAY = {"optimizer": {"weight_decay": 0.0}}


def exempt_from_weight_decay(modules):
    """Mark every parameter of ``modules`` (``None`` entries skipped) as not decayed."""
    for module in modules:
        if module is not None:
            for param in module.parameters():
                param.optim_overrides = NO_WEIGHT_DECAY


def optimizer_overrides(param):
    return (getattr(param, "optim_overrides", None) or {}).get("optimizer")


def param_groups(params):
    """``params`` as torch param groups (dicts) by their overrides; None when none has any."""
    groups = {}
    for param in params:
        overrides = optimizer_overrides(param)
        key = tuple(sorted(overrides.items())) if overrides else ()
        groups.setdefault(key, []).append(param)
    if list(groups) in ([], [()]):
        return None
    return [{"params": members, **dict(key)} for key, members in groups.items()]


def install():
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
    optim.build_optimizer = build_optimizer_with_groups
    FP16Optimizer.build_optimizer = classmethod(build_fp16_optimizer_checked)
