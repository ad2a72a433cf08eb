"""k-means over unit gradient vectors: scikit-learn on the CPU, cuML on a GPU.

Prismatic Synthesis clusters the normalised proxy gradients and calls the clusters with
the fewest members *sparse*: the regions of gradient space the data covers least. Both
libraries are used as they are; this module only picks one, keeps the result deterministic
for a seed, and streams (``MiniBatchKMeans.partial_fit``) when the vectors do not fit in
memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from dataengine.core.errors import StageError


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d) float32
    labels: np.ndarray  # (n,) int32 for the vectors it was fitted on (empty when streamed)

    @property
    def k(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """Nearest centroid (Euclidean, as k-means minimises) of each row."""
        return nearest(vectors, self.centroids)


def nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    c = np.asarray(centroids, dtype=np.float32)
    # argmin ||x - c||^2 = argmin ||c||^2 - 2 x.c
    dist = (c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)
    return dist.argmin(axis=1).astype(np.int32)


def fit_kmeans(vectors: np.ndarray, k: int, seed: int = 0, gpu: bool = False, n_init: int = 3) -> KMeansResult:
    """k-means in memory (k is capped at the number of distinct rows)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("k-means needs at least one vector")
    k = max(1, min(k, len(np.unique(x.round(6), axis=0))))
    if gpu:
        try:
            from cuml.cluster import KMeans as CuKMeans
        except ImportError as exc:
            raise StageError(f"k-means on the GPU needs cuML ({exc}); pip install 'dataengine[gpu]' or drop --gpu") from None
        model = CuKMeans(n_clusters=k, random_state=seed, n_init=n_init, output_type="numpy").fit(x)
        return KMeansResult(np.asarray(model.cluster_centers_, np.float32), np.asarray(model.labels_, np.int32))
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(x)
    return KMeansResult(model.cluster_centers_.astype(np.float32), model.labels_.astype(np.int32))


def fit_kmeans_streaming(batches: Callable[[], Iterable[np.ndarray]], k: int, seed: int = 0,
                         batch_rows: int = 8192) -> KMeansResult:
    """Mini-batch k-means over ``batches()`` (called once per pass): memory is one batch.

    Two passes over the data: one to fit, made by the caller's second ``batches()`` call
    when it assigns labels (:meth:`KMeansResult.assign`)."""
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=batch_rows, n_init=3)
    pending = np.zeros((0, 0), np.float32)
    for chunk in batches():
        chunk = np.asarray(chunk, np.float32)
        pending = chunk if pending.size == 0 else np.concatenate([pending, chunk])
        if len(pending) >= max(k, batch_rows):  # partial_fit needs at least k rows
            model.partial_fit(pending)
            pending = np.zeros((0, 0), np.float32)
    if pending.size:
        if not hasattr(model, "cluster_centers_") and len(pending) < k:
            return fit_kmeans(pending, k, seed)
        model.partial_fit(pending)
    return KMeansResult(model.cluster_centers_.astype(np.float32), np.zeros(0, np.int32))
