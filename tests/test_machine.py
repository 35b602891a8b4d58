"""What decides a run's bits (``nnexp.provenance.machine``), the verdict of `nnexp reproduce`
(``nnexp.reproduce.verdict``) and how ``model.deterministic`` is read off the command line: in-
process, on records of machines made up by replacing fields of this one's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nnexp.config.schema import DType
from nnexp.provenance import machine
from nnexp.reproduce.verdict import (
    DIFFERENT,
    EQUIVALENT,
    IDENTICAL,
    default_tolerance,
    deviation,
    verdict,
)
from nnexp.run import deterministic

SERVER = machine.Machine(
    arch="x86_64",
    cpu="Intel(R) Xeon(R) Processor",
    blas="openblas",
    blas_version="0.3.31.188.0",
    blas_kernel="SkylakeX",
    numpy="2.4.6",
    numpy_simd="X86_V3 X86_V4 AVX512_ICL",
    cpus="2",
)
LAPTOP = replace(SERVER, cpu="AMD Ryzen", blas_kernel="Haswell", numpy_simd="X86_V3")
AVX512_FLAGS = frozenset({"sse2", "sse3", "sse4_2", "popcnt", "avx", "avx2", "fma", "avx512f"})
AVX512_FLAGS |= {"avx512cd", "avx512bw", "avx512dq", "avx512vl"}
AVX2_FLAGS = frozenset({"sse2", "sse3", "sse4_2", "popcnt", "avx", "avx2", "fma"})


def test_numpy_simd_is_the_dispatch_numpy_uses():
    """Contract with numpy: show_config's "found" lists the dispatched targets this process
    uses, which numpy's private tables say too."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    assert machine.numpy_simd() == [t for t in __cpu_dispatch__ if __cpu_features__[t]]


def test_this_machine_round_trips_through_tags():
    here = machine.this_machine()
    assert here.numpy == np.__version__ and here.arch
    assert machine.Machine.from_tags(here.tags()) == here
    assert all(key.startswith("nnexp.machine.") for key in here.tags())
    assert machine.Machine.from_tags({"nnexp.machine.arch": "x86_64"}) is None


def test_pinning_sets_the_recorded_kernel_and_turns_off_loops_not_recorded():
    pinned = machine.pinned_environment(LAPTOP, SERVER, AVX512_FLAGS, {"HOME": "/h"})
    assert pinned == {
        "HOME": "/h",
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL",
    }
    # the restarted process computes as recorded: pinning it again changes nothing
    assert machine.pinned_environment(LAPTOP, LAPTOP, AVX512_FLAGS, pinned) == pinned
    assert machine.differences(LAPTOP, LAPTOP, AVX512_FLAGS) == []


def test_a_kernel_this_cpu_lacks_is_not_pinned_and_named():
    pinned = machine.pinned_environment(SERVER, LAPTOP, AVX2_FLAGS, {})
    assert "OPENBLAS_CORETYPE" not in pinned and "NPY_DISABLE_CPU_FEATURES" not in pinned
    assert machine.differences(SERVER, LAPTOP, AVX2_FLAGS) == [
        "openblas kernel Haswell here, SkylakeX recorded "
        "(this CPU lacks avx512bw avx512cd avx512dq avx512f avx512vl)",
        "numpy's SIMD loops X86_V3 here, X86_V3 X86_V4 AVX512_ICL recorded "
        "(X86_V4 AVX512_ICL off or not on this CPU)",
    ]


@pytest.mark.parametrize(
    ("elsewhere", "line"),
    [
        (replace(SERVER, arch="aarch64"), "another architecture: aarch64 here, x86_64 recorded"),
        (replace(SERVER, blas="mkl"), "another BLAS vendor: mkl here, openblas recorded"),
        (
            replace(SERVER, blas_version="0.3.27"),
            "another openblas version: 0.3.27 here, 0.3.31.188.0 recorded",
        ),
        (replace(SERVER, numpy="2.3.0"), "another numpy version: 2.3.0 here, 2.4.6 recorded"),
    ],
)
def test_what_cannot_be_pinned_is_one_line_each(elsewhere, line):
    assert machine.differences(SERVER, elsewhere, AVX512_FLAGS) == [line]
    pinned = machine.pinned_environment(
        SERVER, replace(elsewhere, blas_kernel="Zen"), AVX512_FLAGS, {}
    )
    assert ("OPENBLAS_CORETYPE" in pinned) == (elsewhere.numpy != SERVER.numpy)


def test_the_baseline_is_nehalem_and_numpys_baseline_loops():
    pinned = machine.baseline_environment(SERVER, {"NPY_DISABLE_CPU_FEATURES": "AVX512_SPR"})
    assert pinned == {
        "OPENBLAS_CORETYPE": "Nehalem",
        "NPY_DISABLE_CPU_FEATURES": "AVX512_SPR X86_V3 X86_V4 AVX512_ICL",
    }
    assert not machine.at_baseline(SERVER)
    assert machine.at_baseline(replace(SERVER, blas_kernel="Nehalem", numpy_simd=""))
    assert not machine.at_baseline(replace(SERVER, blas_kernel="Nehalem"))


@pytest.mark.parametrize(
    ("arguments", "wanted"),
    [
        (["model.deterministic=true"], True),
        (["optim.epochs=3", "+model.deterministic=True"], True),
        (["-m", "model.deterministic=false,true"], True),
        (["model.deterministic=false"], False),
        (["model.hidden=3", "deterministic=true"], False),
    ],
)
def test_deterministic_is_read_off_the_command_line(arguments, wanted):
    assert deterministic.requested(arguments) is wanted


def test_deviation_is_relative_to_the_largest_magnitude():
    a = np.array([[10.0, -2.0], [np.nan, 0.5]])
    assert deviation(a, a.copy()) == 0.0
    b = a.copy()
    b[0, 1] += 1e-13
    assert deviation(a, b) == pytest.approx(1e-14, rel=1e-3)
    c = np.array([0.5, 0.25])
    assert deviation(c, c + 1e-13) == pytest.approx(1e-13, rel=1e-3)
    assert deviation(a, None) == deviation(a, a[0]) == float("inf")
    b[1, 0] = 1.0
    assert deviation(a, b) == float("inf")


def test_the_three_verdicts():
    reason = ["openblas kernel Haswell here, SkylakeX recorded"]
    same = verdict("old", "new", [0.0, 0.0], reason, 1e-12)
    assert same.code == IDENTICAL == 0
    assert same.line == "identical: run new reproduces old bit for bit"
    close = verdict("old", "new", [0.0, 3e-16], reason, 1e-12)
    assert close.code == EQUIVALENT == 3
    assert close.line == (
        "equivalent within 1e-12 (largest deviation 3e-16; openblas kernel Haswell here, "
        "SkylakeX recorded): run new reproduces old"
    )
    assert "no recorded cause" in verdict("old", "new", [3e-16], [], 1e-12).line
    far = verdict("old", "new", [3e-16, 2e-12], reason, 1e-12)
    assert far.code == DIFFERENT == 1
    assert far.line == "different: run new does not reproduce old"


def test_each_float_type_has_a_tolerance_of_thousands_of_its_epsilons():
    """A float32 run differs by ~1e-6 where a float64 run differs by ~1e-15: measured between
    numpy's baseline and AVX2 loops, 200 epochs of mini-batches, 1.0e-6."""
    for dtype in DType:
        epsilons = default_tolerance(dtype.value) / np.finfo(dtype.value).eps
        assert 2000 < epsilons < 10000, (dtype, epsilons)
    assert default_tolerance("float32") > 1e-6 > default_tolerance("float64")


def test_the_blas_recorded_is_numpys_even_beside_scipys():
    import scipy.linalg  # noqa: F401 (loads scipy's own OpenBLAS beside numpy's)

    assert "numpy" in str(machine.numpy_blas()["filepath"])


def test_a_deterministic_config_in_a_process_off_the_baseline_is_refused():
    from omegaconf import OmegaConf

    from nnexp.errors import UserError

    if machine.at_baseline(machine.this_machine()):
        pytest.skip("this process computes on the baseline already")
    with pytest.raises(
        UserError, match=r"pass model\.deterministic=true on the nnexp-train command"
    ):
        deterministic.check(OmegaConf.create({"model": {"deterministic": True}}))
    deterministic.check(OmegaConf.create({"model": {"deterministic": False}}))
