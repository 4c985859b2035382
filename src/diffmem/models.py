"""The model registry (name -> builder) and building a model from a configuration.

Adding a model kind is one ``register`` call: configuration checks, ``build_model``, ``load``,
``diffmem train --model`` and the results table all read the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from flax import nnx

from diffmem import tasks
from diffmem.dnc import DNC
from diffmem.lstm import LSTM
from diffmem.ntm import NTM
from diffmem.sam import SAM
from diffmem.scan import check_remat
from diffmem.sdnc import LINK_TOPK as SDNC_LINK_TOPK
from diffmem.sdnc import SDNC

if TYPE_CHECKING:  # config imports this module for the model names: types only
    from diffmem.config import Config, ModelConfig
    from diffmem.tasks import Task

# (task, model config, rngs, **layer_args) -> a fresh module; ``layer_args`` (``build_model``'s)
# are passed only when given, so a builder that takes none needs no ``**``.
Builder = Callable[..., nnx.Module]


@dataclass(frozen=True)
class ModelKind:
    """One kind of model, as ``ModelConfig.kind`` (``--model``) names it."""

    name: str
    build: Builder  # (task, model config, rngs, **layer_args) -> a fresh module for the task
    description: str  # a noun phrase for help and messages, e.g. "LSTM baseline"
    # An external memory: the model has ``has_memory = True`` and returns a memory trace on
    # request (diffmem.plots), and the ModelConfig memory fields apply to it.
    has_memory: bool = True
    # Its parameters do not depend on the number of memory rows, so a model trained on one
    # memory runs on another (ModelConfig.eval_memory_rows).
    resizable_memory: bool = False


_REGISTRY: dict[str, ModelKind] = {}


def register(name: str, build: Builder, *, description: str, has_memory: bool = True,
             resizable_memory: bool = False) -> ModelKind:
    """Make ``ModelConfig.kind == name`` (``--model name``) build ``build(task, model, rngs)``,
    with ``model`` the run's ModelConfig; the builder ignores the fields that do not apply.
    ``build_model``'s ``layer_args``, where given, follow as keywords."""
    kind = ModelKind(name, build, description, has_memory, resizable_memory)
    _REGISTRY[name] = kind
    return kind


def names() -> list[str]:
    """The registered model kinds, the paper's three first."""
    return list(_REGISTRY)


def get(name: str) -> ModelKind:
    """The model kind registered as ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; the models are: {', '.join(names())}")
    return _REGISTRY[name]


def _ntm(controller: str) -> Builder:
    def build(task: Task, m: ModelConfig, rngs: nnx.Rngs, **layer_args: Any) -> NTM:
        return NTM(
            task.input_size,
            task.output_size,
            controller=controller,
            controller_size=m.controller_size,
            controller_layers=m.controller_layers,
            read_heads=m.read_heads,
            write_heads=m.write_heads,
            memory_rows=m.memory_rows,
            memory_width=m.memory_width,
            shift_radius=m.shift_radius,
            memory_init=m.memory_init,
            clip=m.clip,
            tape_bias=m.tape_bias,
            tape_read_heads=m.tape_read_heads,
            read_after_write=m.read_after_write,
            state_grad_clip=m.state_grad_clip,
            rngs=rngs,
            **layer_args,
        )

    return build


def _lstm(task: Task, m: ModelConfig, rngs: nnx.Rngs, **layer_args: Any) -> LSTM:
    return LSTM(task.input_size, task.output_size, hidden_size=m.controller_size,
                layers=m.controller_layers, rngs=rngs, **layer_args)


def _dnc_args(m: ModelConfig) -> dict[str, Any]:
    """The configuration's arguments of the DNC's parameters and refinements, which the DNC
    and the sparse DNC share."""
    return dict(controller="lstm", controller_size=m.controller_size,
                controller_layers=m.controller_layers, read_heads=m.read_heads,
                memory_rows=m.memory_rows, memory_width=m.memory_width, clip=m.clip,
                content_masking=m.content_masking, deallocation=m.deallocation,
                link_sharpness=m.link_sharpness, state_grad_clip=m.state_grad_clip)


def _dnc(task: Task, m: ModelConfig, rngs: nnx.Rngs, **layer_args: Any) -> DNC:
    return DNC(task.input_size, task.output_size, link_topk=m.link_topk, **_dnc_args(m),
               rngs=rngs, **layer_args)


def _sam(task: Task, m: ModelConfig, rngs: nnx.Rngs, **layer_args: Any) -> SAM:
    return SAM(
        task.input_size,
        task.output_size,
        controller="lstm",
        controller_size=m.controller_size,
        controller_layers=m.controller_layers,
        read_heads=m.read_heads,
        memory_rows=m.memory_rows,
        memory_width=m.memory_width,
        read_topk=m.read_topk,
        clip=m.clip,
        state_grad_clip=m.state_grad_clip,
        rngs=rngs,
        **layer_args,
    )


def _sdnc(task: Task, m: ModelConfig, rngs: nnx.Rngs, **layer_args: Any) -> SDNC:
    return SDNC(task.input_size, task.output_size, read_topk=m.read_topk,
                link_topk=SDNC_LINK_TOPK if m.link_topk is None else m.link_topk,
                **_dnc_args(m), rngs=rngs, **layer_args)


register("ntm-lstm", _ntm("lstm"), description="NTM with an LSTM controller")
register("ntm-ff", _ntm("feedforward"), description="NTM with a feed-forward controller")
register("lstm", _lstm, description="LSTM baseline", has_memory=False)
register("dnc", _dnc, description="DNC with an LSTM controller", resizable_memory=True)
register("sam", _sam, description="sparse access memory with an LSTM controller",
         resizable_memory=True)
register("sdnc", _sdnc, description="sparse DNC with an LSTM controller", resizable_memory=True)


def build_model(config: Config, seed: int | jax.Array | None = None, *,
                evaluation: bool = False, **layer_args: Any) -> nnx.Module:
    """A freshly initialised model for ``config``, seeded by ``seed`` (an integer or a PRNG
    key; default ``config.train.seed``);
    with ``evaluation=True``, on the memory it is evaluated with (``eval_memory_rows``).
    ``layer_args`` go to the layer's constructor: the settings a configuration does not
    hold, ``dtype``, ``param_dtype`` and ``remat`` (docs/layers.md)."""
    rngs = nnx.Rngs(config.train.seed if seed is None else seed)
    m = config.model
    if evaluation and m.eval_memory_rows is not None:
        m = dataclasses.replace(m, memory_rows=m.eval_memory_rows)
    return get(m.kind).build(tasks.get(config.task), m, rngs, **layer_args)


def for_evaluation(model: nnx.Module, config: Config) -> nnx.Module:
    """``model`` as it is evaluated: itself, or its parameters on a memory of
    ``eval_memory_rows`` rows where the configuration sets one."""
    if config.model.eval_memory_rows is None:
        return model
    resized = nnx.eval_shape(lambda: build_model(config, evaluation=True))
    shapes = lambda m: jax.tree.map(np.shape, nnx.state(m))  # noqa: E731
    if shapes(resized) != shapes(model):
        raise ValueError(f"the {config.model.kind}'s variables depend on the number of memory "
                         "rows, so it cannot be evaluated on another memory: unset "
                         "model.eval_memory_rows")
    nnx.update(resized, nnx.state(model))
    return resized


def with_remat(graphdef: nnx.GraphDef, params: nnx.State, rest: nnx.State,
               remat: str | None) -> nnx.GraphDef:
    """The graph of the model ``nnx.merge(graphdef, params, rest)`` with ``remat`` (see
    ``diffmem.ntm.NTM``) in place of its layers' ``remat="auto"``, for a caller that knows
    better than the batch size: a population's members vmapped side by side take
    "dots_saveable" (``diffmem.scan.remat_policy``). Layers with another setting keep it."""
    remat = check_remat(remat)
    model = nnx.merge(graphdef, params, rest)
    layers = [node for _, node in nnx.iter_graph(model)
              if isinstance(node, nnx.Module) and getattr(node, "remat", None) == "auto"]
    for layer in layers:
        layer.remat = remat
    return nnx.graphdef(model)


def count_parameters(model: nnx.Module) -> int:
    """Number of trained scalars (nnx.Param), as the paper counts them."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
