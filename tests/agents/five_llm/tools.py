"""The five_llm agent's function node: joins the topic and the four model outputs."""


def join(topic, k1, k2, k3, k4):
    return {"result": f"{topic}: {k1} {k2} {k3} {k4}"}
