"""How it is trained: the data-parallel step (`trainer`), AdamW and its schedule (`optim`), the
training input (`batches`), orbax checkpoints (`checkpointing`), the workdir's lock
(`workdir_lock`), signals and stops (`preemption`), several processes (`distributed`), the
diagnosis of a non-finite step (`diagnostics`), and the loop itself (`loop.run`)."""
