"""gan-improved: techniques against mode collapse (Salimans et al. 2016; Lin et al. 2018;
Metz et al. 2017) as gancore components."""

__version__ = "0.1.0"
