"""Lightning callbacks: step plans (Early-Step Focus and the anchors it is compared to), sample-video logging, and
adapter export."""
