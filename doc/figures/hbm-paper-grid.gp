# fa2 sim --sweep paper --plot doc/figures/hbm-paper-grid.svg; to render it again, run gnuplot hbm-paper-grid.gp in this file's directory
set terminal svg size 960,760 dynamic font 'Helvetica,12' background 'white'
set output 'hbm-paper-grid.svg'
set logscale xy
set grid
set key top left
set format y '%.0e'
set multiplot layout 2,2 title "HBM bytes (fwd+bwd) on the FA2 paper's grid, H100-SXM5-80GB\nsolid: global (requested), dashed: DRAM (after L2)"
set xlabel 'sequence length'
set ylabel 'bytes'
set logscale x 2
set title 'head dim 64, not causal'
plot 'hbm-paper-grid.dat' index 0 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'standard', \
     'hbm-paper-grid.dat' index 0 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#d62728' notitle, \
     'hbm-paper-grid.dat' index 1 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'FlashAttention', \
     'hbm-paper-grid.dat' index 1 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#1f77b4' notitle, \
     'hbm-paper-grid.dat' index 2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'FlashAttention-2', \
     'hbm-paper-grid.dat' index 2 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#2ca02c' notitle
set title 'head dim 64, causal'
plot 'hbm-paper-grid.dat' index 3 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'standard', \
     'hbm-paper-grid.dat' index 3 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#d62728' notitle, \
     'hbm-paper-grid.dat' index 4 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'FlashAttention', \
     'hbm-paper-grid.dat' index 4 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#1f77b4' notitle, \
     'hbm-paper-grid.dat' index 5 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'FlashAttention-2', \
     'hbm-paper-grid.dat' index 5 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#2ca02c' notitle
set title 'head dim 128, not causal'
plot 'hbm-paper-grid.dat' index 6 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'standard', \
     'hbm-paper-grid.dat' index 6 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#d62728' notitle, \
     'hbm-paper-grid.dat' index 7 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'FlashAttention', \
     'hbm-paper-grid.dat' index 7 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#1f77b4' notitle, \
     'hbm-paper-grid.dat' index 8 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'FlashAttention-2', \
     'hbm-paper-grid.dat' index 8 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#2ca02c' notitle
set title 'head dim 128, causal'
plot 'hbm-paper-grid.dat' index 9 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'standard', \
     'hbm-paper-grid.dat' index 9 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#d62728' notitle, \
     'hbm-paper-grid.dat' index 10 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'FlashAttention', \
     'hbm-paper-grid.dat' index 10 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#1f77b4' notitle, \
     'hbm-paper-grid.dat' index 11 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'FlashAttention-2', \
     'hbm-paper-grid.dat' index 11 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#2ca02c' notitle
unset multiplot
