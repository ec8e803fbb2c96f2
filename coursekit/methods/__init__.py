"""The reusable methods of the slides: mask criteria, weight protocols, schedules, IMP, supermasks,
saliencies, structured and low-rank surgery, compression and coding, sparse kernels, spectra, mutual
information, network slimming."""
