"""Sample-quality metrics: FID, KID, precision/recall and Inception Score.

* :mod:`~landgan.metrics.scores` -- the metrics as pure functions of feature arrays;
* :mod:`~landgan.metrics.inception` -- the FID Inception feature extractor;
* :mod:`~landgan.metrics.is_classifier` -- the ImageNet classifier IS needs;
* :mod:`~landgan.metrics.sources` -- real-image sources and the feature cache;
* :mod:`~landgan.metrics.evaluate` -- evaluating a ``sample_fn``, result tables.

See docs/metrics.md for definitions, preprocessing and sample-count caveats.
"""

from landgan.metrics.evaluate import (
    evaluate_model,
    evaluate_real,
    format_table,
    sample_features,
    score_features,
    table3_markdown,
)
from landgan.metrics.inception import FeatureExtractor, FIDInception, load_feature_extractor
from landgan.metrics.is_classifier import IS_UNAVAILABLE, load_is_classifier
from landgan.metrics.scores import fid, fid_from_features, inception_score, kid, precision_recall
from landgan.metrics.sources import image_source_features

__all__ = [
    "FIDInception",
    "FeatureExtractor",
    "IS_UNAVAILABLE",
    "evaluate_model",
    "evaluate_real",
    "fid",
    "fid_from_features",
    "format_table",
    "image_source_features",
    "inception_score",
    "kid",
    "load_feature_extractor",
    "load_is_classifier",
    "precision_recall",
    "sample_features",
    "score_features",
    "table3_markdown",
]
