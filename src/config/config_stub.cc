// placeholder until config.cc lands
