from ._standin import StandIn


class WorkerResources(StandIn):
    pass
