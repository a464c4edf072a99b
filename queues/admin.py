# The queue is worked from the board, not the admin: arrivals and their events are records of
# what happened and are not edited here.
