from otamodel.cli import main

main()
