"""The engines that train one epoch, behind one interface (base.Engine): the readable
reference, the lean mini-batch engine and the fused online kernel, and the one place that
chooses between them (choose)."""
