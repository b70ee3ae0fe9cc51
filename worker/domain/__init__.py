"""Pure domain rules: tags, images, policy, menu. No I/O, no clock."""
