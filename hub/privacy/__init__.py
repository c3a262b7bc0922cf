"""Privacy duties the operator carries out: notifying learners of a data breach."""
