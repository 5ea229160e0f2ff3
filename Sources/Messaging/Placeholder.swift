// placeholder until the Messaging module lands
