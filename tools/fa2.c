/* placeholder: replaced by the fa2 command-line program */
#include "fa2.h"
#include <stdio.h>
int main(void) { printf("fa2 %s\n", fa2_version_string()); return 0; }
