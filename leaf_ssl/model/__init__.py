"""What is trained: configs and their validation (`configuration`), the COLA model and loss
(`cola`), the supervised baseline (`supervised`), SpecAugment (`specaugment`), and
config -> model and objective (`build`). Free of TensorFlow."""
