"""The course's tooling: the command line, the list of topics, notebook execution and grading."""
