/* lines — a payload for the log-capture benchmark: writes MIB mebibytes of
 * 100-byte lines ("line NNNNNNNNNN xxxx...\n") to stdout, one 65,500-byte
 * block of 655 lines written over and over (the payload's own cost stays
 * far below the worker's). Usage: lines MIB */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    unsigned long long total = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1) << 20, n = 0;
    static char block[65500];
    for (int i = 0; i < 655; i++) {
        char *line = block + i * 100;
        snprintf(line, 17, "line %010d ", i);
        memset(line + 16, 'x', 83);
        line[99] = '\n';
    }
    while (n < total) {
        size_t l = total - n < sizeof(block) ? (size_t)(total - n) : sizeof(block);
        ssize_t w = write(1, block, l);
        if (w <= 0)
            return 1;
        n += (unsigned long long)w;
    }
    return 0;
}
