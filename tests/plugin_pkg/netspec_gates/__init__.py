"""netspec-gates: a plugin adding the `swish_gate` op to netspec (see `netspec_gates.ops`)."""
