"""The paper's grid as data: which runs to train, and how each run and its floors are evaluated.

A grid config (configs/grids/*.py) names the variants, training seeds, config files, tasks and
floors; `plan` turns it into a list of `Run`s, each with the probes (and the filter analysis) of
itself and of its untrained floors. `python -m leaf_ssl.grid` (`leaf_ssl.cli.grid`) executes a plan.

Per variant and training seed s (the seed changes initialisation, data order and augmentation):
- `<variant>_s<s>_ssl`: self-supervised training, probed (`probes/`) and analysed (`analysis/`);
- floors of that run's initial weights (`random:<run>`, so of seed s):
  `<variant>_s<s>_untrained/probes` (initial BatchNorm statistics, identities),
  `<variant>_s<s>_untrained_bn/probes` (statistics re-estimated from `bn_batches` batches),
  `<variant>_s<s>_untrained_frontend/probes` (the untrained frontend alone, no encoder). A frontend
  initialised from the mel scale (or fixed mel) does not depend on the seed: probed for the first seed only;
- with `supervised`, `<variant>_s<s>_supervised`: the supervised baseline with the same seed.
"""
from __future__ import annotations

import dataclasses
import shlex

import ml_collections

VARIANTS = ("mel", "sincnet_mel", "sincnet_random", "leaf_mel", "leaf_random")
# mel, LEAF mel- and random-init: claims 1 and 2 for LEAF.
CORE_VARIANTS = ("mel", "leaf_mel", "leaf_random")
FLOORS = ("untrained", "untrained_bn", "untrained_frontend")


def grid_config() -> ml_collections.ConfigDict:
    """Every field of a grid, with its default; strings of several items are space-separated."""
    grid = ml_collections.ConfigDict()
    # Demo corpus folder, built with `python -m leaf_ssl.data.demo --out <corpus> <corpus_flags>` if it
    # has no corpus.json ('' : the grid's data is prepared elsewhere).
    grid.corpus = ""
    grid.corpus_flags = ""
    grid.tasks = ""              # probe tasks, e.g. "keyword instrument language"
    grid.task_flags = ""         # probe flags that locate them, e.g. "--data_dir {corpus}"
    grid.variants = "core"       # "core" (CORE_VARIANTS), "all" (VARIANTS), or names from VARIANTS
    grid.seeds = 2               # training seeds 0 .. seeds-1 per variant
    grid.supervised = False      # also the supervised baseline of each variant and seed
    # Config files; {frontend}, {init} ('' for mel) and {variant} ('leaf,random', 'mel') are filled in,
    # and a ':' left with nothing after it is dropped.
    grid.ssl_config = ""
    grid.supervised_config = ""
    # Flags: {corpus} in them is the corpus folder.
    grid.train_flags = ""        # more `python -m leaf_ssl.train` flags for the self-supervised runs
    grid.supervised_flags = ""   # ... and for the supervised ones
    grid.floors = " ".join(FLOORS)
    grid.bn_batches = 50         # batches of the pretraining data that re-estimate the BN floor's statistics
    grid.probe_seeds = 3         # linear heads per probe
    grid.probe_flags = ""        # more `python -m leaf_ssl.probe` flags (e.g. "--epochs 1 --min_steps 1")
    grid.analyze = True          # the filter analysis of each trained run (claim 3)
    return grid


@dataclasses.dataclass(frozen=True)
class Probe:
    """`python -m leaf_ssl.probe --ckpt <ckpt> --workdir <results>` over the grid's tasks, plus `flags`."""
    ckpt: str
    results: str
    flags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run and its evaluations: `probes` of it and of its floors; `analyze`: its filters."""
    name: str
    config: str
    workdir: str
    flags: tuple[str, ...]
    probes: tuple[Probe, ...]
    analyze: bool


def split_variant(variant: str) -> tuple[str, str]:
    """'leaf_random' -> ('leaf', 'random'); 'mel' -> ('mel', '')."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {list(VARIANTS)}, 'core' or 'all'")
    frontend, _, init = variant.partition("_")
    return frontend, init


def selected_variants(spec: str) -> list[str]:
    names = {"core": list(CORE_VARIANTS), "all": list(VARIANTS)}.get(spec.strip(), spec.split())
    if not names:
        raise ValueError("grid.variants is empty")
    for name in names:
        split_variant(name)
    return names


def config_file(template: str, variant: str) -> str:
    frontend, init = split_variant(variant)
    filled = template.format(frontend=frontend, init=init, variant=f"{frontend},{init}" if init else frontend)
    return filled[:-1] if filled.endswith(":") else filled


def flags(grid: ml_collections.ConfigDict, field: str) -> tuple[str, ...]:
    """The grid's `field` (train_flags, supervised_flags, task_flags, probe_flags) as arguments."""
    return tuple(shlex.split(grid[field].format(corpus=grid.corpus)))


def check(grid: ml_collections.ConfigDict) -> None:
    """Raises ValueError for a grid that cannot be planned."""
    unknown = set(grid.floors.split()) - set(FLOORS)
    if unknown:
        raise ValueError(f"grid.floors: unknown {sorted(unknown)}; choose from {list(FLOORS)}")
    if not grid.tasks.split():
        raise ValueError("grid.tasks is empty: no task to probe")
    if grid.seeds < 1:
        raise ValueError(f"grid.seeds must be at least 1, got {grid.seeds}")
    if not grid.ssl_config:
        raise ValueError("grid.ssl_config is empty")
    if grid.supervised and not grid.supervised_config:
        raise ValueError("grid.supervised is on but grid.supervised_config is empty")
    selected_variants(grid.variants)


def plan(grid: ml_collections.ConfigDict, out: str) -> list[Run]:
    """The runs of `grid` under `out`, seed by seed (every variant's first seed before any second)."""
    check(grid)
    floors = set(grid.floors.split())
    runs = []
    for seed in range(grid.seeds):
        for variant in selected_variants(grid.variants):
            _, init = split_variant(variant)
            name = f"{variant}_s{seed}"
            workdir = f"{out}/{name}_ssl"
            untrained = f"random:{workdir}"
            probes = [Probe(workdir, f"{workdir}/probes", ("--tensorboard",))]
            if "untrained" in floors:
                probes.append(Probe(untrained, f"{out}/{name}_untrained/probes"))
            if "untrained_bn" in floors:
                probes.append(Probe(untrained, f"{out}/{name}_untrained_bn/probes",
                                    ("--bn_batches", str(grid.bn_batches))))
            if "untrained_frontend" in floors and (seed == 0 or init == "random"):
                probes.append(Probe(untrained, f"{out}/{name}_untrained_frontend/probes", ("--features", "frontend")))
            seed_flag = f"--config.seed={seed}"
            runs.append(Run(f"{name}_ssl", config_file(grid.ssl_config, variant), workdir,
                            (*flags(grid, "train_flags"), seed_flag), tuple(probes), grid.analyze))
            if grid.supervised:
                supervised = f"{out}/{name}_supervised"
                runs.append(Run(f"{name}_supervised", config_file(grid.supervised_config, variant), supervised,
                                (*flags(grid, "supervised_flags"), seed_flag),
                                (Probe(supervised, f"{supervised}/probes", ("--tensorboard",)),), grid.analyze))
    return runs
