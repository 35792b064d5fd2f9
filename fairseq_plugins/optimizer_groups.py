"""Parameters kept out of weight decay, with any fairseq optimizer.

fairseq builds its optimizer from one flat list of parameters, so ``--weight-decay``
applies to all of them. Its own convention for per-parameter settings is an
``optim_overrides`` attribute on a parameter (``{"optimizer": {"weight_decay": 0.0}}``),
read only by its ``composite`` optimizer. ``compat.optimizers.per_parameter_optimizer_settings``
makes every optimizer honour the ``optimizer`` part of it through ``param_groups``:
parameters with the same overrides become one param group of the underlying torch
optimizer with those values, the others the default group. Nothing changes for a
model whose parameters carry no overrides.

Spike No More keeps the embeddings (std ~1 with ``--embed-init-std 1``) out of weight
decay, which would otherwise pull the shortcut back towards zero.
"""

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
