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

Variants are the paper's (`VARIANTS`) or a grid's own (`variant_flags`: a name and its training
flags over `base_variant`, as a recipe search needs). The floors of a grid's own variant depend on
its architecture only (its `--config.frontend.*` / `--config.encoder.*` flags), so variants that
share one share their floors.
"""
from __future__ import annotations

import dataclasses
import re
import shlex

import ml_collections

VARIANTS = ("mel", "sincnet_mel", "sincnet_random", "leaf_mel", "leaf_random")
# mel, LEAF mel- and random-init: claims 1 and 2 for LEAF.
CORE_VARIANTS = ("mel", "leaf_mel", "leaf_random")
FLOORS = ("untrained", "untrained_bn", "untrained_frontend")
FEATURES = ("encoder", "frontend")
TABLE_ROWS = ("frontend", "run")
# Flags that change the weights a run starts from, so its untrained floors.
_ARCHITECTURE_FLAG = re.compile(r"--config\.(frontend|encoder)\.")


def grid_config() -> ml_collections.ConfigDict:
    """Every field of a grid, with its default; strings of several items are space-separated."""
    grid = ml_collections.ConfigDict()
    # Demo corpus folder, built with `python -m leaf_ssl.data.demo --out <corpus> <corpus_flags>` if it
    # has no corpus.json ('' : the grid's data is prepared elsewhere).
    grid.corpus = ""
    grid.corpus_flags = ""
    grid.tasks = ""              # probe tasks, e.g. "keyword instrument language"
    grid.task_flags = ""         # probe flags that locate them, e.g. "--data_dir {corpus}"
    grid.variants = "core"       # "core" (CORE_VARIANTS), "all" (VARIANTS), or names from VARIANTS / variant_flags
    # A grid's own variants: name -> training flags added to base_variant's run, e.g.
    # {"tiny_batch_64": "--config.encoder.name=efficientnet_tiny --config.train.batch_size=64"}.
    grid.variant_flags = ml_collections.ConfigDict()
    grid.base_variant = "leaf_mel"  # the paper variant (config file) a grid's own variants start from
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
    grid.trained_features = "encoder"  # what of each trained run is probed: "encoder", and/or "frontend" (alone)
    grid.bn_batches = 50         # batches of the pretraining data that re-estimate the BN floor's statistics
    grid.probe_seeds = 3         # linear heads per probe
    grid.probe_flags = ""        # more `python -m leaf_ssl.probe` flags (e.g. "--epochs 1 --min_steps 1")
    grid.analyze = True          # the filter analysis of each trained run (claim 3)
    grid.table_rows = "frontend"  # a row per frontend x init x training (claims added), or per "run"
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


def selected_variants(grid: ml_collections.ConfigDict) -> list[str]:
    spec = grid.variants
    names = {"core": list(CORE_VARIANTS), "all": list(VARIANTS)}.get(spec.strip(), spec.split())
    if not names:
        raise ValueError("grid.variants is empty")
    for name in names:
        if name not in grid.variant_flags:
            split_variant(name)
    return names


def paper_variant(grid: ml_collections.ConfigDict, variant: str) -> str:
    """The paper variant whose config file `variant` trains with: itself, or the grid's base_variant."""
    return grid.base_variant if variant in grid.variant_flags else variant


def floor_name(grid: ml_collections.ConfigDict, variant: str) -> str:
    """The paper variant's name, or for a grid's own variant its base and architecture flags, e.g.
    'leaf_mel+encoder.name=efficientnet_b0': the name of what its floors measure."""
    if variant not in grid.variant_flags:
        return variant
    architecture = sorted(flag.removeprefix("--config.") for flag in shlex.split(grid.variant_flags[variant])
                          if _ARCHITECTURE_FLAG.match(flag))
    return "+".join([grid.base_variant, *(re.sub(r"[^A-Za-z0-9.=_-]", "_", flag) for flag in architecture)])


def config_file(template: str, variant: str) -> str:
    frontend, init = split_variant(variant)
    filled = template.format(frontend=frontend, init=init, variant=f"{frontend},{init}" if init else frontend)
    return filled[:-1] if filled.endswith(":") else filled


def flags(grid: ml_collections.ConfigDict, field: str) -> tuple[str, ...]:
    """The grid's `field` (train_flags, supervised_flags, task_flags, probe_flags) as arguments."""
    return tuple(shlex.split(grid[field].format(corpus=grid.corpus)))


def check(grid: ml_collections.ConfigDict) -> None:
    """Raises ValueError for a grid that cannot be planned."""
    for field, allowed in (("floors", FLOORS), ("trained_features", FEATURES)):
        unknown = set(grid[field].split()) - set(allowed)
        if unknown:
            raise ValueError(f"grid.{field}: unknown {sorted(unknown)}; choose from {list(allowed)}")
    if grid.table_rows not in TABLE_ROWS:
        raise ValueError(f"grid.table_rows: unknown {grid.table_rows!r}; choose from {list(TABLE_ROWS)}")
    clashes = set(grid.variant_flags) & set(VARIANTS)
    if clashes:
        raise ValueError(f"grid.variant_flags: {sorted(clashes)} name paper variants; give your variants other names")
    split_variant(grid.base_variant)
    if not grid.tasks.split():
        raise ValueError("grid.tasks is empty: no task to probe")
    if grid.seeds < 1:
        raise ValueError(f"grid.seeds must be at least 1, got {grid.seeds}")
    if not grid.ssl_config:
        raise ValueError("grid.ssl_config is empty")
    if grid.supervised and not grid.supervised_config:
        raise ValueError("grid.supervised is on but grid.supervised_config is empty")
    selected_variants(grid)


def plan(grid: ml_collections.ConfigDict, out: str) -> list[Run]:
    """The runs of `grid` under `out`, seed by seed (every variant's first seed before any second)."""
    check(grid)
    floors = set(grid.floors.split())
    runs = []
    for seed in range(grid.seeds):
        for variant in selected_variants(grid):
            base = paper_variant(grid, variant)
            own_flags = tuple(shlex.split(grid.variant_flags[variant])) if variant in grid.variant_flags else ()
            name = f"{variant}_s{seed}"
            workdir = f"{out}/{name}_ssl"
            probes = _trained_probes(grid, workdir) + _floor_probes(grid, floors, variant, seed, workdir, out)
            seed_flag = f"--config.seed={seed}"
            runs.append(Run(f"{name}_ssl", config_file(grid.ssl_config, base), workdir,
                            (*flags(grid, "train_flags"), *own_flags, seed_flag), probes, grid.analyze))
            if grid.supervised:
                supervised = f"{out}/{name}_supervised"
                runs.append(Run(f"{name}_supervised", config_file(grid.supervised_config, base), supervised,
                                (*flags(grid, "supervised_flags"), *own_flags, seed_flag),
                                _trained_probes(grid, supervised), grid.analyze))
    return runs


def _trained_probes(grid: ml_collections.ConfigDict, workdir: str) -> tuple[Probe, ...]:
    features = grid.trained_features.split()
    probes = []
    if "encoder" in features:
        probes.append(Probe(workdir, f"{workdir}/probes", ("--tensorboard",)))
    if "frontend" in features:
        probes.append(Probe(workdir, f"{workdir}/probes_frontend", ("--features", "frontend")))
    return tuple(probes)


def _floor_probes(grid: ml_collections.ConfigDict, floors: set[str], variant: str, seed: int,
                  workdir: str, out: str) -> tuple[Probe, ...]:
    """The floors of the run's initial weights (`random:<run>`), in folders named by what they measure."""
    untrained, name = f"random:{workdir}", f"{floor_name(grid, variant)}_s{seed}"
    _, init = split_variant(paper_variant(grid, variant))
    probes = []
    if "untrained" in floors:
        probes.append(Probe(untrained, f"{out}/{name}_untrained/probes"))
    if "untrained_bn" in floors:
        probes.append(Probe(untrained, f"{out}/{name}_untrained_bn/probes",
                            ("--bn_batches", str(grid.bn_batches))))
    # A frontend initialised from the mel scale (or fixed mel) does not depend on the seed.
    if "untrained_frontend" in floors and (seed == 0 or init == "random"):
        probes.append(Probe(untrained, f"{out}/{name}_untrained_frontend/probes",
                            ("--features", "frontend")))
    return tuple(probes)

