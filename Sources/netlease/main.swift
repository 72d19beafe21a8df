print("netlease")
