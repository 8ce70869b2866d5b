"""Zoo entries (data, not code): installed as the package `keras_gen.zoo_entries`."""
