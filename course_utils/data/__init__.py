"""course_utils.data: every data set the notebooks use, real or embedded.

Map of the subpackage (imports flow downward):

- ``faces``       the fallbacks ``load_face_identities`` / ``load_face_attributes``
                  (real data if present, else SynthFaces), and the table of real data sets
- ``orl``, ``lfw``, ``fairface``, ``utkface``, ``folder``
                  one module per real face data set in its official layout: ORL/Olivetti,
                  LFW (people and pairs), FairFace, UTKFace, your own photos (one
                  folder per person); their downloads
- ``face_files``  what they share: face preprocessing, decoding through the tensor
                  cache, scanning folders, reading label CSVs
- ``images``      embedded samples (scikit-image pictures, ``lfw_subset``,
                  scikit-learn digits and photos); CIFAR-10 and FashionMNIST;
                  fallback ``load_image_classification``
- ``synthfaces``  SynthFaces, the procedural face generator
- ``text``        words of several languages from ``wordfreq`` (offline) and a
                  character vocabulary, for the text CNN of notebook 01
- ``sampling``    pairs, triplets, P x K batches, identity-disjoint and
                  stratified splits
- ``describe``    ``describe(dataset)``: counts per identity and per group
- ``cache``       ``TensorImageDataset``, the decoded-tensor cache (an
                  accelerator: any failure warns once and loads from the
                  source), ``atomic_write``, checksummed downloads, the
                  data-layer errors

All loaders return a :class:`TensorImageDataset`: items ``(image, target)``
with ``image`` a float tensor ``(C, H, W)`` in ``[0, 1]``; arrays
``targets``, ``classes``, and a DataFrame ``attributes`` (``groups`` for the
demographic columns). Data lives in ``data_dir()`` (``COURSE_DATA_DIR``),
caches in ``cache_dir()``; see ``data/README.md`` for layouts and sources.
"""

from course_utils.data.cache import (
    ChecksumError,
    DataError,
    DataFormatError,
    DatasetNotFoundError,
    DataWarning,
    DownloadError,
    ImageDecodeError,
    TensorImageDataset,
    atomic_path,
    atomic_save,
    atomic_write,
    clean_stale_temp_files,
    content_digest,
    download_file,
    extract_archive,
    file_digest,
    fingerprint_files,
    load_or_build,
    tensor_cache_path,
)
from course_utils.data.describe import describe
from course_utils.data.face_files import (
    RemoteFile,
    decode_faces,
    face_transform,
    preprocess_face,
    read_face,
)
from course_utils.data.faces import (
    load_face_attributes,
    load_face_identities,
)
from course_utils.data.fairface import (
    FAIRFACE_AGES,
    FAIRFACE_GENDERS,
    FAIRFACE_RACES,
    load_fairface,
    load_fairface_labels,
)
from course_utils.data.folder import (
    load_face_folder,
)
from course_utils.data.images import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    SAMPLE_IMAGE_NAMES,
    download_cifar10,
    download_fashion_mnist,
    load_cifar10,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_classification,
    load_lfw_subset,
    photo_crops,
    sample_images,
    sklearn_sample_images,
)
from course_utils.data.lfw import (
    LFW_CROP,
    download_lfw,
    load_lfw_pairs,
    load_lfw_people,
    parse_lfw_pairs,
)
from course_utils.data.orl import (
    download_orl_faces,
    load_orl_faces,
)
from course_utils.data.sampling import (
    PairDataset,
    PKBatchSampler,
    Split,
    TripletDataset,
    balanced_indices,
    identity_split,
    make_pairs,
    make_triplets,
    stratified_split,
)
from course_utils.data.synthfaces import (
    AGE_GROUPS,
    PRESENTATIONS,
    SKIN_TONES,
    SynthFacesConfig,
    make_synthfaces,
)
from course_utils.data.utkface import (
    UTKFACE_GENDERS,
    UTKFACE_RACES,
    load_utkface,
    parse_utkface_name,
    utkface_subsample,
)

__all__ = [
    # datasets and errors
    "TensorImageDataset",
    "DataError",
    "DatasetNotFoundError",
    "DataFormatError",
    "ImageDecodeError",
    "DownloadError",
    "ChecksumError",
    "DataWarning",
    # real faces
    "load_face_folder",
    "load_orl_faces",
    "load_lfw_people",
    "load_lfw_pairs",
    "parse_lfw_pairs",
    "load_fairface",
    "load_fairface_labels",
    "load_utkface",
    "utkface_subsample",
    "parse_utkface_name",
    "download_orl_faces",
    "download_lfw",
    "FAIRFACE_RACES",
    "FAIRFACE_GENDERS",
    "FAIRFACE_AGES",
    "UTKFACE_RACES",
    "UTKFACE_GENDERS",
    "LFW_CROP",
    "RemoteFile",
    # face preprocessing
    "preprocess_face",
    "read_face",
    "decode_faces",
    "face_transform",
    # fallbacks
    "load_face_identities",
    "load_face_attributes",
    "load_image_classification",
    # embedded and general images
    "sample_images",
    "sklearn_sample_images",
    "photo_crops",
    "load_lfw_subset",
    "load_digits_dataset",
    "load_cifar10",
    "load_fashion_mnist",
    "download_cifar10",
    "download_fashion_mnist",
    "SAMPLE_IMAGE_NAMES",
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    # SynthFaces
    "SynthFacesConfig",
    "make_synthfaces",
    "SKIN_TONES",
    "PRESENTATIONS",
    "AGE_GROUPS",
    # sampling and splits
    "Split",
    "identity_split",
    "stratified_split",
    "balanced_indices",
    "make_pairs",
    "make_triplets",
    "PairDataset",
    "TripletDataset",
    "PKBatchSampler",
    # description, cache, downloads
    "describe",
    "load_or_build",
    "tensor_cache_path",
    "fingerprint_files",
    "atomic_save",
    "atomic_path",
    "atomic_write",
    "clean_stale_temp_files",
    "content_digest",
    "file_digest",
    "download_file",
    "extract_archive",
]
