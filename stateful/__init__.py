"""The property suite: the Hypothesis state machine over ``System.apply``, its settings profiles
and a programmatic runner."""
