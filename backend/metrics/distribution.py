"""Distribution metrics over sets of clip features: FID_k, FID_g, Div_k, Div_g.

These are the AIST++ benchmark numbers (Li et al., ICCV 2021, "AI Choreographer";
Siyao et al., CVPR 2022, "Bailando"): each clip is summarised by its kinetic (72) and
geometric (32) feature vectors (``backend.metrics.aist_features``); a generated set is
compared with a reference set (AIST++ ground truth) by

* FID: the Fréchet distance between Gaussians fitted to the two sets,
  ``|mu_g - mu_r|^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))``;
* Div: the mean Euclidean distance over all pairs of clips of one set.

Both are computed on features standardised by the *reference* set's per-dimension
mean and standard deviation, exactly as Bailando's ``quantized_metrics``
(``utils/metrics_new.py``: ``normalize``, ``calc_fid``, ``calculate_avg_distance``)
does; FACT's ``tools/calculate_scores.py`` in ``google-research/mint`` standardises
the same way. Without that step the numbers are not comparable to published tables.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.spatial.distance import pdist

NORMALIZE_EPS: float = 1e-10
"""Added to the reference standard deviation (Bailando ``normalize``; FACT the same),
so that a constant dimension maps to 0 instead of dividing by zero."""

FID_SINGULAR_EPS: float = 1e-5
"""Diagonal offset when the covariance product has no finite square root (Bailando
``calc_fid``; FACT and pytorch-fid use 1e-6 in the same place)."""


def _check_set(features: np.ndarray, name: str) -> np.ndarray:
    """A finite (N, D) float array with N >= 2 (a covariance or a pair needs two)."""
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {array.shape}")
    if array.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {array.shape[0]}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} has no feature dimensions")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_same_dim(first: np.ndarray, second: np.ndarray, names: str) -> None:
    if first.shape[1] != second.shape[1]:
        raise ValueError(
            f"{names}: feature dimensions differ ({first.shape[1]} vs {second.shape[1]})"
        )


def normalize_by_reference(reference: np.ndarray,
                           generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardised by the reference's per-dimension mean and std.

    ``(x - mean_ref) / (std_ref + 1e-10)``, population std (ddof 0), as Bailando's
    ``normalize``. The reference defines the scale so that every feature dimension
    weighs the same in FID and Div regardless of its units (m^2/s^2 next to fractions),
    and so that the generated set is measured on the ground truth's ruler.
    """
    ref = _check_set(reference, "reference")
    gen = _check_set(generated, "generated")
    _check_same_dim(ref, gen, "normalize_by_reference")
    mean = ref.mean(axis=0)
    scale = ref.std(axis=0) + NORMALIZE_EPS
    return (ref - mean) / scale, (gen - mean) / scale


def fid(generated: np.ndarray, reference: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets.

    Sample means and unbiased covariances (``np.cov``, ddof 1). The matrix square root
    of ``S_g S_r`` comes from ``scipy.linalg.sqrtm``; if it is not finite (a singular
    product), both covariances get ``FID_SINGULAR_EPS`` on the diagonal and it is taken
    again, as in the reference. A small imaginary part from round-off is dropped (real
    part), and a tiny negative total from round-off is clamped to 0: a distance.
    """
    gen = _check_set(generated, "generated")
    ref = _check_set(reference, "reference")
    _check_same_dim(gen, ref, "fid")
    mean_gen, mean_ref = gen.mean(axis=0), ref.mean(axis=0)
    cov_gen = np.atleast_2d(np.cov(gen, rowvar=False))
    cov_ref = np.atleast_2d(np.cov(ref, rowvar=False))

    with warnings.catch_warnings():
        # A singular product is expected (fewer clips than dimensions); handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_gen @ cov_ref)
    if not np.all(np.isfinite(root)):
        offset = np.eye(cov_gen.shape[0]) * FID_SINGULAR_EPS
        root = linalg.sqrtm((cov_gen + offset) @ (cov_ref + offset))
    root = np.real(root)

    shift = mean_gen - mean_ref
    distance = float(shift @ shift + np.trace(cov_gen) + np.trace(cov_ref) - 2.0 * np.trace(root))
    return max(distance, 0.0)


def diversity(features: np.ndarray) -> float:
    """Mean Euclidean distance over all unordered pairs of rows of an (N, D) set.

    Bailando's ``calculate_avg_distance``: the sum over i < j of ``|x_i - x_j|``
    divided by N(N-1)/2. Feed it normalised features (``normalize_by_reference``) to
    get Div_k / Div_g as published.
    """
    array = _check_set(features, "features")
    return float(np.mean(pdist(array, metric="euclidean")))


def fid_and_diversity(gen_k: np.ndarray, ref_k: np.ndarray,
                      gen_g: np.ndarray, ref_g: np.ndarray) -> dict[str, float]:
    """FID_k, FID_g, Div_k, Div_g (and the reference set's own Div) as Bailando reports.

    Each feature family is first standardised by its reference set
    (``normalize_by_reference``); FID compares the standardised sets; diversities are
    taken on the standardised features too, for the generated set (``div_k``,
    ``div_g``) and for the reference set (``div_k_reference``, ``div_g_reference``,
    Bailando's ``div_k_gt``/``div_m_gt``; ``fid_g`` is its ``fid_m``).
    """
    ref_k_n, gen_k_n = normalize_by_reference(ref_k, gen_k)
    ref_g_n, gen_g_n = normalize_by_reference(ref_g, gen_g)
    return {
        "fid_k": fid(gen_k_n, ref_k_n),
        "fid_g": fid(gen_g_n, ref_g_n),
        "div_k": diversity(gen_k_n),
        "div_g": diversity(gen_g_n),
        "div_k_reference": diversity(ref_k_n),
        "div_g_reference": diversity(ref_g_n),
    }
