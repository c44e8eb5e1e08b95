from ._standin import StandIn


class InvocationJob(StandIn):
    pass


class InvocationEnvironment(StandIn):
    pass


class InvocationRequirements(StandIn):
    pass
