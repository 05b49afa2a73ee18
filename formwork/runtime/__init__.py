"""The Formwork kernel: interprets entity definitions and processes; never imports Flask."""
