"""Page building blocks shared by several pages."""
