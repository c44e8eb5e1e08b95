from ._standin import StandIn


class EnvironmentResolverArguments(StandIn):
    pass
