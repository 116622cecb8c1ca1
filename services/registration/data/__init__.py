"""Data shipped with the registration service (the example 诊查费统筹 rules)."""
