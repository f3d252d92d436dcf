def tick(event):
    return {"slot": event["slot"]}
