"""Pretrained networks: where each comes from and how it is loaded.

Map of the sub-package:

- ``imagenet``  ImageNet weights through torchvision's weights API (cached file
                or download), loaded into the zoo's models or torchvision's
- ``sources``   the course's own small source checkpoints (shipped in
                ``course_utils/checkpoints``) and the recipes that made them
- ``facenet``   FaceNet's Inception-ResNet-v1 and the loader for its published
                weights (downloaded on a connected machine)
- ``recognizer`` dlib's published face recogniser (detect, align, 128-d descriptors,
                a descriptor cache); ``heads``: attribute heads on its descriptors
- ``chips``     the aligned 150 x 150 face chips its network reads, cached by content,
                and a data set of them (for ``transfer.cached_features``)

Every loader reads weights with ``torch.load(..., weights_only=True)``.
"""

from course_utils.pretrained.chips import AlignedFaceDataset, aligned_chips, aligned_face_dataset
from course_utils.pretrained.facenet import (
    FACENET_WEIGHTS,
    FaceNetWeights,
    FaceWeightsUnavailableError,
    InceptionResnetV1,
    check_facenet_state_dict,
    facenet_cache_paths,
    facenet_preprocess,
    load_facenet,
    try_facenet,
)
from course_utils.pretrained.heads import (
    UTKFACE_TO_FAIRFACE_RACE,
    fit_attribute_head,
    majority_baseline,
    shared_race_labels,
)
from course_utils.pretrained.imagenet import (
    OFFLINE_IMAGENET,
    ImageNetModel,
    LoadReport,
    PretrainedUnavailableError,
    imagenet_categories,
    imagenet_features,
    imagenet_weights,
    load_imagenet_model,
    load_torchvision_state_dict,
    torchvision_to_course,
    try_imagenet_model,
    weights_cache_path,
)
from course_utils.pretrained.recognizer import (
    FaceRecognizer,
    RecognizerConfig,
    face_distance,
    face_recognizer,
    faces_available,
)
from course_utils.pretrained.sources import (
    CHECKPOINT_DIR,
    RECIPES,
    SourceRecipe,
    SourceResult,
    build_source_model,
    list_sources,
    load_source_model,
    save_source_checkpoint,
    source_datasets,
    source_info,
    sources_table,
    train_source_model,
)

__all__ = [
    # ImageNet
    "PretrainedUnavailableError",
    "ImageNetModel",
    "OFFLINE_IMAGENET",
    "imagenet_categories",
    "imagenet_features",
    "imagenet_weights",
    "weights_cache_path",
    "load_imagenet_model",
    "try_imagenet_model",
    "torchvision_to_course",
    "load_torchvision_state_dict",
    "LoadReport",
    # course checkpoints
    "CHECKPOINT_DIR",
    "SourceRecipe",
    "RECIPES",
    "source_datasets",
    "build_source_model",
    "SourceResult",
    "train_source_model",
    "save_source_checkpoint",
    "list_sources",
    "sources_table",
    "source_info",
    "load_source_model",
    # FaceNet
    "InceptionResnetV1",
    "FaceNetWeights",
    "FACENET_WEIGHTS",
    "facenet_preprocess",
    "facenet_cache_paths",
    "check_facenet_state_dict",
    "load_facenet",
    "try_facenet",
    "FaceWeightsUnavailableError",
    # dlib's face recogniser and attribute heads on its descriptors
    "face_recognizer",
    "FaceRecognizer",
    "RecognizerConfig",
    "faces_available",
    "face_distance",
    "fit_attribute_head",
    "majority_baseline",
    "shared_race_labels",
    "UTKFACE_TO_FAIRFACE_RACE",
    "aligned_chips",
    "AlignedFaceDataset",
    "aligned_face_dataset",
]
