"""The training table and the numbers a training run is judged by: the contract between the Glue
training-set job, the SageMaker pipeline's scripts and whoever starts the pipeline.

The training table (``curated/training_set/``, written by ``glue_jobs/training_set.py``, read by
``pipelines/tables.py``) has exactly these columns:

=================  ===========  ====================================================================
``user_id``        string       the user (the feature groups' record identifier)
``cutoff_time``    timestamp    the instant the label is about: 00:00 UTC of the renewal date. No
                                feature of the row is newer than it (the point-in-time join)
``label``          int (0/1)    1 when the subscriber churned at that renewal
every other        feature      the feature groups' values as of the cutoff, in group order
=================  ===========  ====================================================================

Nothing else: a column that is not a key, the cutoff or the label is a feature to the pipeline.

This module is imported by the pipeline's scripts inside the SageMaker framework container
(Python 3.10): it imports nothing but :mod:`platform_core.schema`, never
:mod:`platform_core.schemas.features` (which needs Python 3.11). A test keeps :data:`KEY` equal to
the feature groups' record identifier.
"""

from __future__ import annotations

from platform_core.schema import Field, Primitive, Schema

NAMESPACE = "platform.training"

KEY = "user_id"
CUTOFF_TIME = "cutoff_time"
LABEL = "label"

# The label part of every training row; the features follow it.
TRAINING_LABEL = Schema(
    name="TrainingLabel",
    namespace=NAMESPACE,
    doc="A churn label as the training pipeline reads it (see glue_jobs.transforms.training_set).",
    fields=(
        Field(KEY, Primitive.STRING, required=True, doc="the subscriber"),
        Field(
            CUTOFF_TIME,
            Primitive.TIMESTAMP,
            required=True,
            doc="00:00 UTC of the renewal date labelled; no feature of the row is newer",
        ),
        Field(LABEL, Primitive.INT, required=True, doc="1 = churned (not renewed within the window), else 0"),
    ),
)

# Columns of the training table that are never features.
NON_FEATURE_COLUMNS: tuple[str, ...] = TRAINING_LABEL.field_names

# --- judging a run ------------------------------------------------------------------------------
# Where evaluation.json (pipelines/evaluate.py; SageMaker's model-quality shape) keeps the test
# split's PR-AUC: the number the quality gate compares, and the number a registered model is
# remembered by.
EVALUATION_PR_AUC_PATH: tuple[str, ...] = ("binary_classification_metrics", "pr_auc", "value")
# The same number, copied by the pipeline's RegisterModel step into the package's
# CustomerMetadataProperties (readable without fetching evaluation.json).
PR_AUC_METADATA_KEY = "pr_auc"
# The pipeline parameter holding the approved model's PR-AUC: a new model must reach it.
BASELINE_PR_AUC_PARAMETER = "BaselinePrAuc"
