"""Networks the models are built from, one file per architecture family.

A builder takes the model's hyper-parameters and returns a `keras.Model`. The contract the
adversarial base relies on:
- a generator maps `z [B, latent_dim]` (and `labels [B]` int for a conditional one, as a
  second input) to images `[B, H, W, C]` in [-1, 1], float32 whatever the policy;
- a discriminator maps images in [-1, 1] (and labels) to logits `[B, 1]` in float32, and
  has a layer named `features` whose output is its representation (the lecture's
  "discriminator features").
"""
