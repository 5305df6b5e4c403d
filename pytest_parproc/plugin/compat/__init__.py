"""What other plugins need from a parallel run, one module per plugin (or convention), each
with the why and the plugin versions checked. Used by the runners; imports from neither."""
