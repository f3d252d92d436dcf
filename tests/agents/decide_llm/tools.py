"""The decide_llm agent's function nodes."""


def went_yes():
    return {"went": "yes"}


def went_no():
    return {"went": "no"}
