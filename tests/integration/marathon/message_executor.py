"""A custom executor written against the unmodified PyPI pymesos ``MesosExecutorDriver``, for an app whose
``executor`` names it: every task it is given runs (TASK_RUNNING) and greets its framework with a framework message
``hello from <task id>``; KILL ends it (TASK_KILLED)."""

import threading
import time

from addict import Dict
from pymesos import Executor, MesosExecutorDriver, encode_data


class Greeter(Executor):
    def launchTask(self, driver, task):  # noqa: N802 - pymesos' callback names
        def run():
            driver.sendStatusUpdate(Dict(task_id=task.task_id, state="TASK_RUNNING", timestamp=time.time()))
            driver.sendFrameworkMessage(encode_data(f"hello from {task.task_id.value}".encode()))

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):  # noqa: N802
        driver.sendStatusUpdate(Dict(task_id=task_id, state="TASK_KILLED", message="killed by the executor"))
        threading.Timer(0.5, driver.stop).start()


if __name__ == "__main__":
    MesosExecutorDriver(Greeter(), use_addict=True).run()
