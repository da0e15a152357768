"""VGG16 transfer learning in Keras: data folder in, run folder with model and metrics out."""
