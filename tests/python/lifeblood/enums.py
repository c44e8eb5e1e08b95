from enum import Enum


class WorkerType(Enum):
    STANDARD = 0
    SCHEDULER_HELPER = 1
