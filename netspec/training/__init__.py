"""Training a spec's network: `config` (the `train:` section, torch-free), `data`, `loop`,
`checkpoints`, `metrics`, `plots`, `progress` and `distributed`. Importing this package
imports nothing heavy; `netspec.training.loop` brings torch."""
