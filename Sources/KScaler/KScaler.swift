// The run: lease → observe → decide → act → record → release. Implemented in issue 5.
