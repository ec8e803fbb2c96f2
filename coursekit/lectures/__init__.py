"""Each lecture's experiment drivers, with the checks of its headline and its figures (``plot_*``);
which topic owns which is ``coursekit.tooling.course.TOPICS``."""
