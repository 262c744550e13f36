"""The benchmarks, one module each (``openpose-plus bench KIND``): every speed target the
issues name is measured by one of these, and the README's tables come from them."""
