"""caching"""
