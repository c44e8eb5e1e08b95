from ._standin import StandIn


class TaskSpawn(StandIn):
    pass


class NewTask(StandIn):
    pass
